"""Lambda handlers, one folder per function; each folder is a CodeUri in template.yaml.

``table.py`` is the one table of those functions (routes, roles, grants); ``template.py`` writes it into
template.yaml (``make template``).
"""
