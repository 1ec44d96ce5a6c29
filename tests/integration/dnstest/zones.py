"""Zone lines for UnboundServer: TXT records of any length split into DNS strings."""


def txt(name, record, chunk=200):
    """A local-data: line for a TXT record at `name` (a fully qualified name, with its final
    dot) holding `record`, split into strings of at most `chunk` octets (255 is the DNS
    limit; a record made of several strings reads as their concatenation). A record given as a
    list or tuple is written as those strings exactly."""
    strings = list(record) if isinstance(record, (list, tuple)) else \
        [record[i:i + chunk] for i in range(0, len(record), chunk)] or [""]
    quoted = " ".join('"' + s + '"' for s in strings)
    return f"local-data: '{name} 300 IN TXT {quoted}'"
