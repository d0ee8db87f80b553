"""Types shared by every area: the Error interface and its members, PageInfo."""
