"""The event router: matches events against automations' triggers, keeps their windows in
PostgreSQL, and fires their actions exactly once."""
