"""Blood bank: inventory with expiry, donors and eligibility, requests and compatibility matching, the
hospital network, alerts and donor call-outs, reports."""
