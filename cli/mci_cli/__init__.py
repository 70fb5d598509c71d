"""``mci``: the operations command-line client of the MCI customers API.

It talks to the API over HTTPS (or HTTP to the local stack) with a bearer token, and uses the standard
library only: it never imports the service's ``mci`` package, so the API's own validation is the one
judge of every record and row it sends.
"""

__version__ = "0.1.0"
