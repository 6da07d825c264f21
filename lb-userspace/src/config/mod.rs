//! keepalived.conf: lexer, parser, model, validation.
