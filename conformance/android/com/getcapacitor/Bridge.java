package com.getcapacitor;

import android.app.Activity;
import android.content.Context;
import android.webkit.WebView;

// The host app's bridge with no WebView attached: Logger sees none and logs
// to Logcat only, and the plugin skips its WebView work. Events the plugin
// notifies go to the Listeners given (what the app's JS would receive).
public class Bridge {

    public interface Listeners {
        void notify(String pluginId, String eventName, JSObject data, boolean retainUntilConsumed);
    }

    private final Activity activity;
    private final CapConfig config;
    private final Listeners listeners;

    public Bridge(Activity activity, CapConfig config, Listeners listeners) {
        this.activity = activity;
        this.config = config;
        this.listeners = listeners;
    }

    public Bridge() {
        this(null, null, null);
    }

    public Activity getActivity() {
        return activity;
    }

    public Context getContext() {
        return activity;
    }

    public CapConfig getConfig() {
        return config;
    }

    void notifyListeners(String pluginId, String eventName, JSObject data, boolean retain) {
        if (listeners != null) {
            listeners.notify(pluginId, eventName, data, retain);
        }
    }

    public WebView getWebView() {
        return null;
    }

    public void eval(String js, Object callback) {}

    public String getAppUrl() {
        return "http://localhost/";
    }

    public String getServerBasePath() {
        return "";
    }

    public void setServerBasePath(String path) {}

    public void setServerAssetPath(String path) {}

    public LocalServer getLocalServer() {
        return null;
    }

    public PluginHandle getPlugin(String pluginId) {
        return null;
    }

    public void addWebViewListener(WebViewListener listener) {}

    public void removeWebViewListener(WebViewListener listener) {}

    public void executeOnMainThread(Runnable runnable) {
        new android.os.Handler(android.os.Looper.getMainLooper()).post(runnable);
    }

    public static class LocalServer {

        public void hostAssets(String path) {}

        public void hostFiles(String path) {}
    }
}
