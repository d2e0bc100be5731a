package koala4j.backend;

import koala4j.tensor.Ops;

/** A chosen backend: its ops and why it was chosen, for the log line every command prints. */
public record Backend(String name, Ops ops, String reason) {
}
