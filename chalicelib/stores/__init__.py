"""Storage ports (Protocols in ports.py) and their DynamoDB and Redis implementations."""
