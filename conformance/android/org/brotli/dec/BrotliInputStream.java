package org.brotli.dec;

import java.io.IOException;
import java.io.InputStream;

// Debian packages no Java Brotli decoder; this stands in so DownloadService
// compiles. A .br manifest entry fails here as a corrupt stream would.
public class BrotliInputStream extends InputStream {

    public BrotliInputStream(InputStream source) throws IOException {
        throw new IOException("brotli decoder not available in the conformance build");
    }

    @Override
    public int read() throws IOException {
        throw new IOException("brotli decoder not available in the conformance build");
    }
}
