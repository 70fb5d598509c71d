"""GET, HEAD and POST /consent/{token}: the customer's public consent page (rules 15-16). No authorizer."""
