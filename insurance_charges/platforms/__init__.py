"""Where the one image runs besides Elastic Beanstalk: the per-platform commands and contracts."""
