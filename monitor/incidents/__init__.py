"""Incidents: transitions that happen together become one incident with a likely cause
(``correlation``); ``audience`` says who an incident affects."""
