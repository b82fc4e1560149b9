"""Alerts (low stock, expiring units, unmet urgent requests) and donor call-outs in waves."""
