"""The table's stream -> domain events on EventBridge (rule 20), in order, each record's event once."""
