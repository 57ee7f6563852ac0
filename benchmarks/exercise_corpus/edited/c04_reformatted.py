# copy of c04: reformatted (temporaries merged, long expression split over lines, spacing changed, ** 2 replaced by tf.square)
import tensorflow as tf


def reparameterize(z_mean,z_log_var,epsilon):
    return z_mean+tf.exp(z_log_var/2)*epsilon


def kl_divergence(z_mean,z_log_var):
    return tf.reduce_sum(
        -0.5*(1+z_log_var-tf.square(z_mean)-tf.exp(z_log_var)),
        axis=-1)


def reconstruction_loss(x,x_decoded):
    eps=1e-7
    bce=-(x*tf.math.log(x_decoded+eps)
          +(1-x)*tf.math.log(1-x_decoded+eps))
    return tf.reduce_sum(bce,axis=-1)
