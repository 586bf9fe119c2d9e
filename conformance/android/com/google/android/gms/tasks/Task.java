package com.google.android.gms.tasks;

public abstract class Task<T> {

    public interface OnSuccessListener<T> {
        void onSuccess(T result);
    }

    public interface OnFailureListener {
        void onFailure(Exception e);
    }

    public abstract Task<T> addOnSuccessListener(OnSuccessListener<? super T> listener);

    public abstract Task<T> addOnFailureListener(OnFailureListener listener);
}
