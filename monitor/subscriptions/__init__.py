"""Self-service subscriptions: the signed links customers follow (``tokens``), the limits on
asking (``limits``), the confirmation mail (``confirmation``) and what each step decides
(``decisions``). Double opt-in: only an address that followed its confirm link subscribes."""
