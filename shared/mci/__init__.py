"""MCI engagement customers service: domain, adapters and the HTTP edge shared by every function."""
