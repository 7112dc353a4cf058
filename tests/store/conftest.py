"""Fixtures of the store tests: both back ends and cheap password hashing."""

import dbfixtures

# the shared database fixtures, registered here by name
cheap_argon2 = dbfixtures.cheap_argon2
db_url = dbfixtures.db_url
