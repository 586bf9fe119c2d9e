package com.getcapacitor.plugin;

// Capacitor's WebView plugin constants.
public class WebView {

    public static final String WEBVIEW_PREFS_NAME = "CapWebViewSettings";
    public static final String CAP_SERVER_PATH = "serverBasePath";
}
