package com.getcapacitor;

// No WebView here: Logger sees none and logs to Logcat only.
public class Bridge {

    public Object getWebView() {
        return null;
    }

    public void eval(String js, Object callback) {}
}
