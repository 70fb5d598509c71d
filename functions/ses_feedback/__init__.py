"""SES bounce and complaint events (through EventBridge): mark the claim's consent email so the partner sees it."""
