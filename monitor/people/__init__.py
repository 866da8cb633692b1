"""People the monitor may tell: one set of rules for the API and the CSV import."""
