"""Governance (docs/governance.md): what each namespace may touch (policies), how much it may use (token
budgets), and what it did (the audit trail). Plain data and bookkeeping: the CSI layer enforces, the HTTP
layer writes the records.
"""
