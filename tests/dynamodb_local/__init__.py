"""Tier 3: the real DynamoDB engine (DynamoDB Local, Java): conditions, transactions and cancellation
reasons as AWS evaluates them, and the limits under real concurrency."""
