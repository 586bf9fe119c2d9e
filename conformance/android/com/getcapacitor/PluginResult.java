package com.getcapacitor;

public class PluginResult {

    private final JSObject data;

    public PluginResult() {
        this(null);
    }

    public PluginResult(JSObject data) {
        this.data = data;
    }

    public JSObject getData() {
        return data;
    }
}
