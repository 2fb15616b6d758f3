# journal.mk: fragment owned by its module; included from local.mk
