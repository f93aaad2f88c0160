"""Reports and postmortems: figures computed in the database, drafts from the timeline, and their renderers."""
