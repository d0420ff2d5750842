"""Conflicts as a person reads them: whose record, which field, whose value and when."""
