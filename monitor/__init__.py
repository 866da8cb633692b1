"""An uptime monitor that tells the affected customers itself."""
