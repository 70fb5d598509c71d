"""The rules of the programme. Pure Python: no boto3, no environment, no I/O."""
