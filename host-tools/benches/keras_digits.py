# The Keras side of the seconds-per-epoch comparison (README performance table):
# python host-tools/benches/keras_digits.py tests/data/digits   (TF 2.21, Keras 3; see tests/data/gen/requirements.txt)
import time, sys, numpy as np, tensorflow as tf, keras
tf.keras.utils.set_random_seed(0)
kw=dict(color_mode="grayscale", image_size=(16,16), batch_size=None, shuffle=False, label_mode="int")
tr=keras.utils.image_dataset_from_directory(sys.argv[1] + "/train", **kw)
te=keras.utils.image_dataset_from_directory(sys.argv[1] + "/test", **kw)
x=np.stack([a.numpy() for a,_ in tr])/255.0; y=np.array([b.numpy() for _,b in tr])
xt=np.stack([a.numpy() for a,_ in te])/255.0; yt=np.array([b.numpy() for _,b in te])
m=keras.Sequential([keras.Input((16,16,1)),keras.layers.Conv2D(8,3,padding="same",activation="relu"),keras.layers.MaxPooling2D(2),
 keras.layers.Conv2D(16,3,padding="same",activation="relu"),keras.layers.MaxPooling2D(2),keras.layers.Flatten(),keras.layers.Dense(10,activation="softmax")])
m.compile(optimizer=keras.optimizers.Adam(1e-3),loss="sparse_categorical_crossentropy",metrics=["accuracy"])
class T(keras.callbacks.Callback):
    def on_epoch_begin(s,e,l=None): s.t=time.time()
    def on_epoch_end(s,e,l=None): print("epoch",e+1,"%.3fs"%(time.time()-s.t),{k:round(v,4) for k,v in l.items()},flush=True)
m.fit(x,y,batch_size=32,epochs=20,verbose=0,callbacks=[T()])
print("test", m.evaluate(xt,yt,verbose=0))
