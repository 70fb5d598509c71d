"""The HTTP edge shared by the API functions: resolver, principal, problem details."""
