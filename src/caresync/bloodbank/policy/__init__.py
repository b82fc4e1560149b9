"""Each organisation's blood bank settings: the donor rule profile, stock thresholds, call-out waves."""
