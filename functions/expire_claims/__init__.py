"""The scheduled sweep (EventBridge Scheduler): expire claims past their deadline and send reminders (rule 17)."""
