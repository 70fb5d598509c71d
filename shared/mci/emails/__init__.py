"""What the service writes to people: consent requests and decision notices, in English and Spanish."""
