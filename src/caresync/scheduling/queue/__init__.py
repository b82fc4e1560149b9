"""The clinic queue: walk-ins and checked-in patients waiting to be seen, triage, the order of calling, wait
estimates, the nurse console and the live waiting-room board."""
