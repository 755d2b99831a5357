"""The Department side: the TUF repository, its keys, publishing bundles, serving, fetching UT1 lists."""
