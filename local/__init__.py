"""Local stack: serves the real handlers on loopback, backed by moto; never deployed."""
