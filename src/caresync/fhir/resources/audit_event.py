"""FHIR resources of this domain (being written)."""

from caresync.fhir.registry import ResourceType

RESOURCES: tuple[ResourceType, ...] = ()
