"""Storage: the database handle, the models, the SQL store that implements sync's Store
protocol, and schema upgrades (the Alembic migrations in storage/migrations)."""
