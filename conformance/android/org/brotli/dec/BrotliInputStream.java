package org.brotli.dec;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

// Debian packages no Java Brotli decoder (org.brotli:dec). This stands in
// for it with Debian's `brotli -d` (package brotli): the stream is decoded
// whole, then read back. A corrupt stream throws, as org.brotli's does.
public class BrotliInputStream extends FilterInputStream {

    public BrotliInputStream(InputStream source) throws IOException {
        super(decode(source));
    }

    private static InputStream decode(InputStream source) throws IOException {
        Process p = new ProcessBuilder("brotli", "--decompress", "--stdout").redirectError(ProcessBuilder.Redirect.DISCARD).start();
        IOException[] writeErr = new IOException[1];
        Thread feeder = new Thread(() -> {
            try (OutputStream in = p.getOutputStream()) {
                source.transferTo(in);
            } catch (IOException e) {
                writeErr[0] = e;
            }
        });
        feeder.start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (InputStream decoded = p.getInputStream()) {
            decoded.transferTo(out);
        }
        try {
            feeder.join();
            if (p.waitFor() != 0) {
                throw new IOException("Brotli stream is corrupted");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("Brotli decoding interrupted", e);
        }
        if (writeErr[0] != null) {
            throw writeErr[0];
        }
        return new ByteArrayInputStream(out.toByteArray());
    }
}
