def helper_and_branch(x):
    # if x.sum() > 0:
    t = sum(x)
    t_1 = greater(t, 0)
    if t_1:
        # return v * k
        y = multiply(x, 2.0)
    else:
        t_2 = multiply(x, -1.0)
        # y = scale(x, k=-1.0) + 1.0
        y = add(t_2, 1.0)
    # return np.exp(y)
    t_3 = exp(y)
    return t_3
