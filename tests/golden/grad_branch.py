def grad_golden_branch(x):
    _ = check_grad_input(x, "argument 'x' of golden_branch")
    # if np.sum(x) > 0:
    t = sum(x)
    t_1 = greater(t, 0)
    if t_1:
        # y = x * x
        y = multiply(x, x)
    else:
        # y = np.exp(x)
        y = exp(x)
    # return np.sum(y)
    t_2 = sum(y)
    dt_2 = grad_seed(t_2, 'golden_branch')
    # grad of: return np.sum(y)
    t_3 = shape(y)
    dy = expand_reduced(dt_2, t_3, None, False)
    if t_1:
        # grad of: y = x * x
        t_4 = multiply(dy, x)
        dx = unbroadcast(t_4, x)
        t_5 = multiply(dy, x)
        t_6 = unbroadcast(t_5, x)
        dx = add(dx, t_6)
    else:
        # grad of: y = np.exp(x)
        dx = multiply(dy, y)
    # return np.sum(y)
    return dx
