"""The hospital network: offering unmet requests to other hospitals, transfers between them, and the
network's availability by group and component."""
