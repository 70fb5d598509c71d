"""Every read and preview route of the partner app in one read-only function: its handler (routes in mci.http.reads)."""
