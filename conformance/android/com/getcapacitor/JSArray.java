package com.getcapacitor;

import org.json.JSONArray;

public class JSArray extends JSONArray {

    public JSArray() {
        super();
    }
}
