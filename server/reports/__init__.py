"""What supervisors read: coverage, trend and overdue households, the problem workflow,
the visit summary behind them, periods, and the Excel and CSV exports."""
