"""Vendor-neutral connector pieces: the connector table, sealed secrets and their rotation, the
once-per-interval sync claim, and the guard in front of connector webhooks. Each vendor lives in
`integrations/<vendor>/`."""
