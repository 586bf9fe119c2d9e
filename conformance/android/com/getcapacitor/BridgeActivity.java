package com.getcapacitor;

import android.app.Activity;
import java.io.File;

public class BridgeActivity extends Activity {

    protected Bridge bridge;

    public BridgeActivity(File root) {
        super(root);
    }

    public Bridge getBridge() {
        return bridge;
    }
}
