package com.getcapacitor;

// Where a call's answer goes back to the app's JS.
public interface MessageHandler {
    void resolve(PluginCall call, JSObject data);

    void reject(PluginCall call, String msg, String code, Exception ex, JSObject data);
}
