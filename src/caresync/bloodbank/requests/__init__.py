"""Blood requests for patients: matching compatible units, atomic allocation, emergency release,
crossmatch, issue, return and transfusion."""
