"""Where AWS is touched: DynamoDB, SES, EventBridge. Each adapter has an in-memory fake in ``memory``."""
