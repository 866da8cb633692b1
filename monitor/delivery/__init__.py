"""From the outbox to people: the sender and its channels (email, SMS, webhook)."""
